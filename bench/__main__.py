"""`python -m bench`: run the whole benchmark session."""

from bench.cli import main

if __name__ == "__main__":
    main()
