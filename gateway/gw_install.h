/*  The contributor's one-line install (`curl -fsSL https://SERVER/install.sh
    | sh`): the gateway serves
      /install.sh                                   deploy/install-agent.sh with
                                                    this server's address filled in
      /downloads/p2c2r-agent-linux-amd64            the agent for Debian 12 amd64
      /downloads/p2c2r-agent-linux-amd64.sha256     its SHA-256 (sha256sum's format)
      /downloads/p2c2r-agent.service                the systemd unit the script installs
    from a downloads directory (--downloads-dir; make install and the Docker
    image fill PREFIX/share/p2c2r/downloads). The files are read once, at
    start, so the script, the binary, its checksum and unit stay one
    consistent set until the gateway restarts.
    The checksum is the directory's own .sha256 file when there is one (made
    by make install: a binary changed on disk after that no longer matches,
    and the script refuses it); else the gateway computes it.
    The address filled in is --public-url when set; else the request's Host
    header, checked strictly (a DNS name, IPv4 or [IPv6], and a port:
    nothing a shell would read), with https when this listener speaks TLS
    or a trusted proxy says X-Forwarded-Proto: https. */
#ifndef GW_INSTALL_H_INCLUDED
#define GW_INSTALL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_INSTALL_AGENT        "p2c2r-agent-linux-amd64"
#define GW_INSTALL_UNIT         "p2c2r-agent.service"
#define GW_INSTALL_MAX_BINARY   (64 * 1024 * 1024)  //  largest agent binary loaded
#define GW_INSTALL_MAX_SCRIPT   (256 * 1024)        //  largest install script loaded
#define GW_INSTALL_URL_MAX      300                 //  longest base URL (scheme, host, port)

//  What an /install.sh request says of the address it was sent to
typedef struct {
    const char *host;           //  the Host header as sent; NULL: none
    const char *proto;          //  X-Forwarded-Proto of a trusted proxy; NULL: none
    bool tls;                   //  the request came over TLS to this gateway
} gw_install_request_t;

typedef struct _gw_install_t gw_install_t;

//  dir: the downloads directory (NULL or "": gw_install_default_dir).
//  public_url: this server's address as users reach it (NULL or "": from
//  each request), already checked by gw_install_url_ok. What is missing
//  from the directory is not served (404), logged once here.
gw_install_t *gw_install_new (const char *dir, const char *public_url);
void gw_install_destroy (gw_install_t **self_p);

//  PREFIX/share/p2c2r/downloads beside the running binary
//  (BINDIR/../share/p2c2r/downloads). The caller frees it.
char *gw_install_default_dir (void);

//  Whether a URL path is this class's (/install.sh, /downloads and below)
bool gw_install_owns (const char *path);

//  Answers a GET of a path gw_install_owns: an HTTP status, and on 200 the
//  body at *buf_p + pre (*len_p bytes, the caller frees *buf_p) and its
//  Content-Type. 400 (with a reason as the body) when the address cannot
//  be told from the request; 404 for anything not served.
unsigned gw_install_get (gw_install_t *self, const char *path, const gw_install_request_t *req,
                         size_t pre, uint8_t **buf_p, size_t *len_p, const char **type_p);

//  Whether url is a valid --public-url: http:// or https://, a host as
//  gw_install_host_ok wants it, an optional "/" and nothing else
bool gw_install_url_ok (const char *url);

//  Whether a Host header value is a DNS name, an IPv4 address or an
//  [IPv6] address, with an optional :PORT (1-65535), and nothing else
bool gw_install_host_ok (const char *host);

//  The base URL the script is filled with ("https://host:port", no
//  trailing slash) into out: 0, or -1 when the request tells none
int gw_install_base_url (gw_install_t *self, const gw_install_request_t *req, char *out,
                         size_t size);

//  The agent's SHA-256 as computed at start (hex), NULL when no binary
const char *gw_install_sha256 (gw_install_t *self);

void gw_install_test (bool verbose);

#endif
