"""What people look at: review (patches as pull requests, verdicts), the HTML report,
blame (from a line of the candidate back to its trajectories) and bisect (the first
commit whose held-out score falls).
"""
