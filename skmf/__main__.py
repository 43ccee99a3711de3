"""Entry point of ``python -m skmf`` and of the ``skmf`` console script."""

from skmf._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
