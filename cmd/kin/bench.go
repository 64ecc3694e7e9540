package main

import "github.com/kinproc/kin/bench"

// benchChildMain runs a benchmark child when kin re-executed itself as one.
func benchChildMain() { bench.ChildMain() }
