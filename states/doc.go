// Package states holds the state schemas of aRPC's own control machines: the
// states shared by the RPC client and server (errors, handshake), which the
// subpackages client and server extend.
//
// Each schema package exports its state names as constants, the schema as
// States (an am.Struct) and the ordered state list as Names. The schemas are
// plain data: copy them with am.CloneStates before changing them.
package states
