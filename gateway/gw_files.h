/*  Static files below a web root (the dashboard, the browser SDK),
    served by the gateway's HTTP (/install.sh and /downloads/ are
    gw_install's, not the web root's). A URL path maps to a
    file under the root; "/" and directories map to their index.html.
    Nothing outside the root is ever read: paths with "." or ".."
    segments are refused, and the resolved path (symlinks followed) must
    still lie below the root's own resolved path. Files are read whole,
    up to a bound, into a buffer with spare bytes in front for the
    writer (LWS_PRE). */
#ifndef GW_FILES_H_INCLUDED
#define GW_FILES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_FILES_MAX_BYTES  (16 * 1024 * 1024)  //  largest file served
#define GW_FILES_MAX_PATH   1024                //  longest URL path looked at

typedef struct _gw_files_t gw_files_t;

//  root: the web root directory. A root that does not exist (or NULL)
//  serves nothing: every file is 404. Never NULL but out of memory.
gw_files_t *gw_files_new (const char *root);
void gw_files_destroy (gw_files_t **self_p);

//  Reads a whole regular file of at most max bytes into a fresh buffer
//  (the caller frees it) after pre spare bytes, NUL-terminated after its
//  len bytes; nofollow refuses a symlink. 200; 404 when it does not exist;
//  403 when it is not a regular file, is larger, or cannot be opened; 500
//  when it cannot be read whole.
unsigned gw_files_read (const char *path, bool nofollow, size_t max, size_t pre,
                        uint8_t **buf_p, size_t *len_p);

//  PREFIX/share/p2c2r/NAME of the installed binaries, found from this
//  executable's path (bin/../share/p2c2r/NAME); freshly allocated
char *gw_files_share_dir (const char *name);

//  The default web root: web/ of the source tree when the binary runs
//  from it (BINDIR/../web), else the installed copy
//  (BINDIR/../share/p2c2r/web, that is $PREFIX/share/p2c2r/web after
//  make install). The caller frees it.
char *gw_files_default_root (void);

//  The resolved root, NULL when there is none
const char *gw_files_root (gw_files_t *self);

//  Looks up a URL path (without the query). Returns an HTTP status: 200
//  with the file in *buf_p (the caller's to free; content at
//  *buf_p + pre, *len_p bytes) and its Content-Type in *type_p; 404 when
//  there is no such file below the root (or the path tries to leave it);
//  403 when the file is not a regular file or is larger than
//  GW_FILES_MAX_BYTES; 500 when it cannot be read.
unsigned gw_files_get (gw_files_t *self, const char *path, size_t pre, uint8_t **buf_p,
                       size_t *len_p, const char **type_p);

//  The Content-Type of a file name, by its extension
const char *gw_files_type (const char *name);

void gw_files_test (bool verbose);

#endif
