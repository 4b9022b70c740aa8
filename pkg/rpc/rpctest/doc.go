// Package rpctest builds connected aRPC servers and clients for tests in one
// line, stops them when the test ends, and fails the test if stopping hangs.
package rpctest
