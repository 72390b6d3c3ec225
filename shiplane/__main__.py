from shiplane.cli.main import run

run()
