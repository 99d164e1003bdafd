package deploy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Resolve decides where files go for one deploy: the root to install under
// and the files with their destinations within it.
//
//   - With a staging root (--root DIR) everything goes under it, the UVM
//     too; PREFIX, if set, is kept inside it.
//   - Without one, PREFIX alone is a staging directory when no UVM part is
//     deployed (the RPM %install case: PREFIX=%{buildroot}), so the
//     manifest goes under PREFIX too and no root privileges are needed.
//   - Otherwise the target is the live system (the UVM part ignores PREFIX,
//     as uvm_install.sh does).
func Resolve(root string, p Params) (string, []File, error) {
	if root == "" && p.Prefix != "" && !slices.Contains(p.Parts, UVM) {
		q := p
		q.Prefix = ""
		files, err := Layout(q)
		return p.Prefix, files, err
	}
	files, err := Layout(p)
	return root, files, err
}

// Deploy installs a deploy target's files (Resolve, then Install) and, on
// the live system, runs the service commands (START_SERVICES); under a
// staging root it only lists them on log. Everything Install checks is
// checked before anything is written.
func Deploy(ctx context.Context, root string, p Params, log io.Writer, opts ...Option) (*Result, error) {
	root, files, err := Resolve(root, p)
	if err != nil {
		return nil, err
	}
	res, err := Install(ctx, root, files, opts...)
	if err != nil {
		return res, err
	}
	cmds := ServiceCommands(p)
	if len(cmds) == 0 {
		return res, nil
	}
	if !IsLive(root) {
		for _, c := range cmds {
			fmt.Fprintf(log, "staging root: not running %s\n", strings.Join(c, " "))
		}
		return res, nil
	}
	return res, RunServiceCommands(ctx, cmds, log)
}

// Undeploy removes what Deploy installed for target parts of p (Resolve's
// root), leaving other targets' files in place.
func Undeploy(ctx context.Context, root string, p Params, opts ...Option) (*UninstallResult, error) {
	if root == "" && p.Prefix != "" && !slices.Contains(p.Parts, UVM) {
		root = p.Prefix
	}
	return Uninstall(ctx, root, Select(p.Variant, p.Parts...), opts...)
}
