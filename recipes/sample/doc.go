// Package sample is uvmbuild's small built-in recipe: a few native steps
// with real data edges (generate → transform → combine), parameterised by
// variables, so that the engine, the cache, `plan` and `graph` can be tried
// without the node-builder sources or runc:
//
//	uvmbuild --recipe sample                 # build all
//	uvmbuild --recipe sample plan COUNT=5    # what would run, and why
//	uvmbuild --recipe sample STYLE=shout     # re-runs transform and combine only
//
// It is also the graph the CLI's tests build.
package sample
