// Package filemode converts between the Unix permission bits (0o7777:
// setuid, setgid, sticky and rwx) that manifests, build records and the
// cache store keep, and Go's fs.FileMode, which puts setuid, setgid and
// sticky in high bits of its own. The graph and the cache must agree on
// this exactly (a setuid bit lost on one side changes an output), so both
// use this one leaf.
package filemode
