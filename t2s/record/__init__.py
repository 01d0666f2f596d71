"""The git record: every ref t2s writes (:mod:`~t2s.record.refs`), the provenance
trailers of its commits (:mod:`~t2s.record.provenance`), which tags are releases
(:mod:`~t2s.record.tags`), what a commit is (:mod:`~t2s.record.describe`), the run
record (:mod:`~t2s.record.runs`), lessons and patch records (:mod:`~t2s.record.lessons`)
and the notes (:mod:`~t2s.record.notes`). No other module spells a ref or a trailer.
"""
