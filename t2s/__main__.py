from t2s.cli import main

main()
