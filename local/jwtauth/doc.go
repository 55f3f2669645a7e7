// Package jwtauth is the local stand-in for API Gateway's JWT authorizer and
// for the identity provider behind it, so that `make local` asks for what
// the deployed API asks for without an AWS account.
//
// The identity provider is an RSA key pair the package makes for itself and
// keeps in a file (LoadOrCreateKey; `make local` and `make token` share
// .local/jwt-signing-key.pem): Key.Mint signs RS256 access tokens for a
// subject and scopes, issued by Issuer to the client Audience.
//
// The authorizer is Verifier.Verify, which checks a request's Authorization
// header as API Gateway's HTTP API JWT authorizer does (see its contract)
// and returns either the requestContext.authorizer.jwt description API
// Gateway puts in the function's event or the 401/403 API Gateway answers
// itself. RouteScopesFromTemplate reads each route's required scopes from
// template.yaml, so the local gateway and the deployed one cannot drift.
//
// It depends on no gateway emulation: local/serve wires it into local/apigw
// through apigw.Options.Authorize.
package jwtauth
