// Package iasl runs the ACPICA iasl compiler as an [acpi.Compiler]: each
// source is written to a fresh temporary directory and compiled there with
// "iasl -f", so the caller's source directory is never written to (igvmgen
// writes its .aml files next to the sources). A failing or missing iasl is an
// error naming the source, never a silently reused stale .aml.
package iasl
