# The two set-up commands: `make run` (the whole stack) and `make test` (every test).
.PHONY: run test bench build format clean fuzz install uninstall

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

# libFuzzer over the JSON parser, router and validation; FUZZ_SECONDS bounds it (default 300).
fuzz:
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),300)

build:
	swift build

format:
	swift format --in-place --recursive Sources Tests Fuzz Package.swift

clean:
	rm -rf .build .build-fuzz var
