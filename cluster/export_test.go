package cluster

// BindReusePort binds spec with SO_REUSEPORT, so that several sockets can
// share its port (TestSpread compares that with one shared socket).
func BindReusePort(spec Spec) (*Socket, error) { return bind(spec, true) }
