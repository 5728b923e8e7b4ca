# The two set-up commands: `make run` (the whole stack) and `make test` (every test).
.PHONY: run test bench build format clean install uninstall

run:
	scripts/run.sh

test:
	scripts/test.sh

install:
	scripts/install.sh

uninstall:
	scripts/install.sh uninstall

bench:
	bench/run.sh

build:
	swift build

format:
	swift format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build var
