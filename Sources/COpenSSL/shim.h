#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/bio.h>
#include <openssl/rand.h>
#include <openssl/ec.h>
#include <openssl/bn.h>

/* OpenSSL macros (SSL_ctrl / BIO_ctrl / EVP_PKEY_CTX_ctrl under the hood) that Swift cannot import:
   one typed wrapper each. */
static inline int peon_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int peon_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline uint64_t peon_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options) { return SSL_CTX_set_options(ctx, options); }
/* SSL_OP_* are built with SSL_OP_BIT(n), which Swift does not evaluate. */
static const uint64_t peon_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
static const uint64_t peon_SSL_OP_IGNORE_UNEXPECTED_EOF = SSL_OP_IGNORE_UNEXPECTED_EOF;
static inline long peon_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
static inline int peon_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t n) { return SSL_CTX_set_num_tickets(ctx, n); }
static inline void peon_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) { SSL_CTX_set_read_ahead(ctx, yes); }
static inline int peon_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline long peon_BIO_get_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
static inline int peon_EVP_PKEY_CTX_set_ec_paramgen_curve_nid(EVP_PKEY_CTX *ctx, int nid) {
    return EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, nid);
}
/* OPENSSL_free is a macro over CRYPTO_free with file/line arguments. */
static inline void peon_OPENSSL_free(void *p) { OPENSSL_free(p); }

/* accept4 is a GNU extension the Glibc module leaves out; accepted sockets must be close-on-exec
   atomically (the agent forks children on other threads). */
#include <sys/socket.h>
#ifndef __USE_GNU
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
#endif
static inline int peon_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }
/* The uid of a unix socket's peer, as the kernel recorded it at connect (SO_PEERCRED), or -1. */
static inline long long peon_peer_uid(int fd) {
    struct { int pid; unsigned int uid; unsigned int gid; } cred;
    socklen_t size = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0 || size != sizeof cred) return -1;
    return cred.uid;
}
