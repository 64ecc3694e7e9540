// Package nodeclient embeds kin's Node.js files so that Go code can write
// them where a Node process loads them: preload.js, the cluster-mode preload
// that package cluster hands to Node apps through NODE_OPTIONS.
package nodeclient

import _ "embed"

// Preload is the source of preload.js. Loaded with --require into an
// unmodified Node app started by kin in cluster mode, it makes listen() on
// the ports kin handed over use the inherited sockets, reports
// {"kin":"listening"} over the IPC channel, and drains the app on
// {"kin":"shutdown"}. Outside kin (no KIN_LISTEN variable) it does nothing.
//
//go:embed preload.js
var Preload []byte
