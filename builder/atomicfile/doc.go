// Package atomicfile replaces a file all at once: the content goes to a
// temporary file beside the destination (same directory, so the same file
// system), gets its mode on the descriptor (independent of the umask), is
// fsynced unless the caller opts out, and is renamed over the destination.
// On any error the temporary file is removed and the destination is left as
// it was, so a failed or interrupted write never leaves a half-written
// output.
//
// It is a leaf: it imports only the standard library, so artifact libraries
// and the build machinery can both use it.
package atomicfile
