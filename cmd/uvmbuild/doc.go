// Command uvmbuild builds the Kata confidential utility VM (kernel command
// line, dm-verity image, IGVM and SNP launch measurement) as a reproducible
// build graph. See the README for usage.
package main
