"""``python -m vitcore`` runs the same click group as the ``vitcore`` console script."""

from vitcore.cli import main

if __name__ == "__main__":
    main(prog_name="vitcore")
