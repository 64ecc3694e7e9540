// Package logfile writes and reads the log files of kin's app instances: one
// file for the stdout and one for the stderr of each instance, line-framed
// with timestamps, rotated by size with a fixed number of old files kept.
//
// The daemon feeds a Writer with the raw bytes of a pipe (io.Copy(w, pipe)),
// or several pipes through their own Inputs; `kin logs` reads the files back
// with Tail and Follow, or TailMany and FollowMany for the time-ordered view
// of several files; `kin flush` is Writer.Truncate, or Truncate for a log
// no Writer has open.
//
// # Record format
//
// A log file is a sequence of records, one per line:
//
//	2026-11-23T05:54:24.123Z listening on :3000
//	2026-11-23T05:54:24.125Z+Enter password:
//
// Each record is a 24-byte timestamp (RFC 3339, always UTC, always with
// exactly three digits of milliseconds, so records sort as text), one marker
// byte, the text and '\n'. The marker is ' ' when the app ended the line
// with a newline and '+' when it did not: the text is a partial line,
// written because the app paused for FlushAfter in the middle of a line,
// because the line was longer than MaxLine (it goes on in the next record),
// or because the app's output ended without a newline. The timestamp is when
// the record's first byte reached the Writer. The text is the app's bytes,
// unchanged: not necessarily UTF-8, and '\r' is not special.
//
// Lines without the timestamp (from a file that something else wrote) are
// read back as records with a zero Time and the whole line as text.
//
// # Files
//
// The log of path "app-0.out.log" is that file plus its rotated
// predecessors "app-0.out.log.1" (the newest) to "app-0.out.log.<Keep>" (the
// oldest). Files are created with mode 0600, since logs may hold secrets,
// and missing directories with mode 0700. Exactly one Writer may write a
// path at a time: rotation and size accounting assume nobody else appends.
package logfile
