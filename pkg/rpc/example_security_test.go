package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// A server that speaks mutual TLS, names each client by its certificate and
// lets an "operator" change only Ready, while it observes Ready alone.
func ExampleWithServerTLS() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pki := rpc.MustTestPKI() // a throwaway CA for the example: use your own certificates
	schema := am.Struct{"Ready": {}, "Maintenance": {}}
	names := am.S{"Ready", "Maintenance", am.Exception}
	source := am.New(ctx, schema, &am.Opts{ID: "plant"})
	_ = source.VerifyStates(names)
	defer func() {
		source.Dispose()
		<-source.WhenDisposed()
	}()

	policy := func(_ context.Context, identity string) (rpc.Permissions, error) {
		if identity == "operator" {
			return rpc.Permissions{Mutate: am.S{"Ready"}, Observe: am.S{"Ready"}}, nil
		}
		return rpc.Permissions{}, errors.New("unknown identity")
	}
	srv, err := rpc.Listen(ctx, "127.0.0.1:0", source,
		rpc.WithServerTLS(pki.ServerConfig(true)),    // require client certificates
		rpc.WithAuthenticator(rpc.CertAuthenticator), // identity: the certificate's CN
		rpc.WithPolicy(policy))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop(true)

	c, err := rpc.Dial(ctx, srv.Addr, schema, names, rpc.WithClientTLS(pki.ClientConfig("operator")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.Worker.Add1("Ready", nil))
	_, err = c.Worker.Mutate(ctx, am.MutationAdd, am.S{"Maintenance"}, nil)
	fmt.Println(errors.Is(err, rpc.ErrForbidden))

	source.Add1("Maintenance", nil)
	_ = c.Worker.Resync(ctx)
	fmt.Println(c.Worker.Is1("Maintenance"), source.Is1("Maintenance"))
	// Output:
	// executed
	// true
	// false true
}

// A server that accepts bearer tokens; a client with a wrong one is refused.
func ExampleTokenAuthenticator() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := am.Struct{"On": {}}
	names := am.S{"On", am.Exception}
	source := am.New(ctx, schema, &am.Opts{ID: "lamp"})
	_ = source.VerifyStates(names)
	defer func() {
		source.Dispose()
		<-source.WhenDisposed()
	}()

	auth := rpc.TokenAuthenticator(map[string]string{"s3cret": "alice"})
	srv, err := rpc.Listen(ctx, "127.0.0.1:0", source, rpc.WithAuthenticator(auth))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop(true)

	_, err = rpc.Dial(ctx, srv.Addr, schema, names, rpc.WithToken("guess"))
	fmt.Println(errors.Is(err, rpc.ErrUnauthenticated))
	c, err := rpc.Dial(ctx, srv.Addr, schema, names, rpc.WithToken("s3cret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.Worker.Add1("On", nil))
	// Output:
	// true
	// executed
}
