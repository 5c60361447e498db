// Package pricing decides which requests cost money and how much.
//
// A Table holds rules in configuration order; the first rule whose method and
// path pattern match a request wins, and a request no rule matches is free
// (or refused, with Routing.DenyUnlisted). A zero price is a real match, so a
// zero-priced rule placed first can exempt a path from a broader priced rule
// below it.
//
// Path patterns are made of "/"-separated segments:
//
//	/v1/quote     exactly that path
//	/v1/items/*   "*" matches exactly one non-empty segment
//	/v1/files/**  a final "**" matches zero or more further segments,
//	              so it covers /v1/files and /v1/files/a/b
//
// Matching must not be escapable by spelling a priced path differently, for
// any server behind the gateway, so Table.Route reads the escaped request
// path itself. It refuses paths that servers read in different ways (control
// characters, invalid UTF-8, backslashes, encoded delimiters, matrix
// parameters, segments ending in a dot or a space) with a *PathError, and
// makes the rest canonical: each segment decoded on its own, empty and "."
// segments dropped, ".." resolved. The gateway forwards that canonical path,
// so the upstream serves exactly what was priced. Literal segments match in
// any letter case unless Routing.CaseSensitive, and a path that can be read
// several ways (exactly and case-folded; with allowed encoded slashes as
// separators; without allowed matrix parameters) takes the highest price
// among its readings, so no spelling is cheaper than a route it can reach.
//
// Methods compare case-insensitively, "*" or "" matches any method, and a GET
// rule also matches HEAD because most servers answer HEAD by running the GET
// handler.
//
// The package imports only the standard library and money; it does no I/O.
package pricing
