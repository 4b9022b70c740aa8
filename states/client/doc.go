// Package client holds the state schema of the aRPC client's control machine
// (Client.Mach).
//
// The connection states Connecting, Connected, Disconnecting and Disconnected
// exclude each other. A normal run goes Start → Connecting → Connected →
// Handshaking → HandshakeDone → Ready; Stop (removing Start) goes through
// Disconnecting to Disconnected.
package client
