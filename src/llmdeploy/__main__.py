from llmdeploy.cli.app import run

run()
