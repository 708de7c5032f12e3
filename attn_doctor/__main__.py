"""``python -m attn_doctor`` runs the command line."""

from attn_doctor.cli import main

if __name__ == "__main__":
    main()
