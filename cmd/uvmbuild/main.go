package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/uvmbuild/uvmbuild/cmd/uvmbuild/cli"
)

func main() {
	// Files uvmbuild and its native actions create get the same modes on
	// every machine: the caller's umask must not leak into outputs.
	syscall.Umask(0o022)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels the build (running actions are stopped and
	// nothing partial is cached); a second one kills uvmbuild at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
