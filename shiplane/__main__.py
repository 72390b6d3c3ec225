# `status` and `history` answer before Typer is imported; everything else goes to it.
from shiplane.cli.fast import run

run()
