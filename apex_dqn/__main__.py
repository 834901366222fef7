"""``python -m apex_dqn``: the same as the ``apex-dqn`` console script."""

from apex_dqn.cli.train import main

if __name__ == "__main__":
    main()
