// Package archtest holds tests of the codebase's shape: the import rules between packages and the
// package documentation every package must have.
package archtest
