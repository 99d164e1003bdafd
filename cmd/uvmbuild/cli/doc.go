// Package cli holds uvmbuild's cobra commands. Each command is thin: it binds
// flags to an options struct, makes one library call and prints the result on
// stdout; logs and progress go to stderr. Exit codes are a contract, see
// exit.go.
package cli
