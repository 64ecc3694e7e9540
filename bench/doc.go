// Package bench measures kin against its peers, side by side in one run, so
// that the ratios between them are solid even on a shared, noisy machine.
//
// IPC runs a parent and a real child process per implementation and times
// round trips (ping-pong: 20 000, or 100 at 1 MiB, after 5 % more untimed)
// and one-way throughput (200 000, 100 000 and 200 messages sent as fast as
// the channel takes them, up to the child's answer that it has them all,
// after one untimed burst of the same size) at 100 B, 4 KiB and 1 MiB:
//
//	raw          Go↔Go, [u32 length][u8 type][u32 n][payload] frames on a
//	             socketpair (fd 3), bufio on both sides: the floor
//	kin-frame    Go↔Go, ipc.Channel with the frame codec
//	kin-json     Go↔Go, ipc.Channel with the JSON codec
//	node-fork    Node↔Node, child_process.fork, json serialization: the peer
//	kin-to-node  a Go parent (proc + ipc, JSON) and an unmodified Node child
//	node-to-kin  a Node parent (child_process.fork with execPath = this
//	             program) and a Go child using ipc.FromEnv
//
// The JSON implementations send {"t":"p","d":<payload string>}; raw and
// kin-frame send the payload bytes. Sizes and MB/s count the payload. Node
// serialises each message (JSON.stringify) and parses each on arrival; kin's
// Go sides send the message as pre-encoded JSON bytes, which is what its API
// takes, and the Go children do not decode messages into Go values (the
// channel still validates every JSON message it sends or receives).
// Spawn times a child's start up to its first IPC message.
//
// Pool, PM and Queue compare kin's pool, process manager and job queue
// with a plain Node pool, PM2 and BullMQ on Redis; their peers installed
// from npm live in PeerDir.
//
// The Go children are copies of the running program: a program that runs
// these benchmarks must call ChildMain first thing in main (or TestMain).
// The Node scripts are embedded and written to a temporary directory per run,
// so an installed kin binary can run them; without node in $PATH the Node
// implementations are reported as skipped.
//
// The package's go test benchmarks (BenchmarkIPC, BenchmarkSpawn) report the
// same figures and the ratios kin's targets are stated in; `kin bench` prints
// Table:
//
//	go test -run='^$' -bench=. ./bench               # one full comparison
//	go test -run='^$' -bench=. -benchtime=5x ./bench # the median of 5
//	go test -run='^$' -bench=. -benchtime=1x ./bench # quick, as CI runs it
//	go test -run='^$' -bench=IPC/oneway/1MiB -impls=raw,kin-frame ./bench
//
// To see where the time goes, profile both sides: -cpuprofile covers the
// parent, and KIN_BENCH_CHILD_PROFILE=<dir> makes every Go child write its
// own CPU profile into dir.
package bench
