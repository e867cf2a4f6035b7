#!/bin/sh
# Regenerates the PKCS#12 and certificate fixtures of jobs/render's tests with
# OpenSSL (3.x), so that the renderer is checked against archives another
# implementation made. Run from this directory: sh gen.sh
# Fixtures are test-only keys; they protect nothing.
set -eu
days=36500
ext() { printf '%s\n' "$@" > ext.cnf; }

# root CA -> intermediate CA -> leaf (with every kind of SAN)
openssl req -x509 -newkey rsa:2048 -nodes -keyout root-ca.key -out root-ca.crt -days $days \
  -subj "/CN=render test root CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "subjectKeyIdentifier=hash" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey rsa:2048 -nodes -keyout intermediate-ca.key -out intermediate-ca.csr \
  -subj "/CN=render test intermediate CA"
ext "basicConstraints=critical,CA:TRUE" "subjectKeyIdentifier=hash" \
  "authorityKeyIdentifier=keyid:always" "keyUsage=critical,keyCertSign,cRLSign"
openssl x509 -req -in intermediate-ca.csr -CA root-ca.crt -CAkey root-ca.key -CAcreateserial \
  -out intermediate-ca.crt -days $days -extfile ext.cnf
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=example.com"
ext "basicConstraints=critical,CA:FALSE" "subjectKeyIdentifier=hash" \
  "authorityKeyIdentifier=keyid:always" \
  "subjectAltName=DNS:example.com,DNS:www.example.com,IP:192.168.1.10,IP:10.0.0.1,email:admin@example.com,URI:https://example.com"
openssl x509 -req -in leaf.csr -CA intermediate-ca.crt -CAkey intermediate-ca.key -CAcreateserial \
  -out leaf.crt -days $days -extfile ext.cnf

# an unrelated self-signed certificate (a "disjunct" chain member)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key \
  -out other-ca.crt -days $days -subj "/CN=render test other CA" \
  -addext "subjectKeyIdentifier=hash"

# the leaf's key in the three PEM encodings parsePrivateKey reads
openssl pkey -in leaf.key -out leaf-pkcs8.key
openssl rsa -in leaf.key -traditional -out leaf-pkcs1.key
openssl ecparam -name prime256v1 -genkey -noout -out ec-sec1.key

# PKCS#12: chain given in shuffled order, so ordering is tested
cat root-ca.crt intermediate-ca.crt > chain-shuffled.pem
openssl pkcs12 -export -in leaf.crt -inkey leaf.key -certfile chain-shuffled.pem \
  -passout pass: -out leaf-nopass.p12
openssl pkcs12 -export -in leaf.crt -inkey leaf.key -certfile chain-shuffled.pem \
  -passout pass:1234 -out leaf-pass1234.p12
openssl pkcs12 -export -in leaf.crt -inkey leaf.key -certfile chain-shuffled.pem \
  -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 \
  -passout pass:1234 -out leaf-legacy3des-pass1234.p12
cat root-ca.crt intermediate-ca.crt other-ca.crt > chain-disjunct.pem
openssl pkcs12 -export -in leaf.crt -inkey leaf.key -certfile chain-disjunct.pem \
  -passout pass: -out leaf-disjunct-nopass.p12

rm -f ext.cnf ./*.csr ./*.srl chain-shuffled.pem chain-disjunct.pem
