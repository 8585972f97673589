// Package readme holds only a test: the Go snippets of the README must
// type-check against the packages as they are.
package readme
