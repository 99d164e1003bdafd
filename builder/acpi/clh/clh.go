package clh

import (
	"embed"
	"io/fs"
)

//go:embed *.dsl
var sources embed.FS

// Sources returns the embedded DSL files (flat, names like "facp.dsl").
func Sources() fs.FS { return sources }
