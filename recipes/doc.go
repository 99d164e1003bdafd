// Package recipes defines what a uvmbuild recipe is — a named set of
// make-style targets and typed variables that turn into a build graph — and
// resolves variables the way GNU make does for the node-builder Makefile:
// VAR=value on the command line beats the environment, which beats the
// variable's default (or its derived default).
//
// Recipes are passed around explicitly: the CLI's composition root builds the
// list from constructors; there is no registry. Each recipe lives in its own
// subpackage (recipes/sample, the small built-in graph; recipes/demo and
// recipes/azurelinux, the node-builder).
//
// A recipe's Plan validates everything it can (variables, policy, sources)
// before any step runs, and returns the steps' artifacts to materialise into
// the output directory.
package recipes
