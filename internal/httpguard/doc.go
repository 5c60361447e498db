// Package httpguard bounds what clients can hold of an HTTP server: how many connections are
// open at once (Limiter, which makes room for a new client by closing idle keep-alive
// connections, oldest first, and never cuts a request in progress), and how long a request body
// may dribble in or a response may wait on a client that stopped reading (Deadlines, whose
// deadlines move with progress, so long uploads and long event streams that keep flowing live
// on).
//
// It imports only the standard library.
package httpguard
