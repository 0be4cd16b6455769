.PHONY: demo test bench lint format

demo:
	sh scripts/demo.sh

test:
	sh scripts/test.sh

bench:
	sh scripts/bench.sh

lint:
	.venv/bin/ruff check src plugins tests bench
	.venv/bin/ruff format --check src plugins tests bench

format:
	.venv/bin/ruff format src plugins tests bench
