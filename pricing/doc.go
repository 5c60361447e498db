// Package pricing decides which requests cost money and how much.
//
// A Table holds rules in configuration order; the first rule whose method and
// path pattern match a request wins, and a request no rule matches is free.
// A zero price is a real match, so a zero-priced rule placed first can exempt
// a path from a broader priced rule below it.
//
// Path patterns are made of "/"-separated segments:
//
//	/v1/quote     exactly that path
//	/v1/items/*   "*" matches exactly one non-empty segment
//	/v1/files/**  a final "**" matches zero or more further segments,
//	              so it covers /v1/files and /v1/files/a/b
//
// Matching must not be escapable by spelling a priced path differently, so a
// request path is first made canonical (see CanonicalPath): the decoded path
// is cleaned with path.Clean, which folds "//", "." and ".." segments and a
// trailing slash. The gateway forwards that same canonical path upstream, so
// the upstream serves exactly what was priced. Matching is case-sensitive:
// /V1/QUOTE is a different path from /v1/quote. An upstream that routes
// case-insensitively needs rules that cover the other spellings (or a
// catch-all "/**" rule).
//
// Methods compare case-insensitively, "*" or "" matches any method, and a GET
// rule also matches HEAD because most servers answer HEAD by running the GET
// handler.
//
// The package imports only the standard library and money; it does no I/O.
package pricing
