/* SPDX-License-Identifier: MIT */
/*
 * master_status - the status socket ($queue_directory/pid/master.status)
 *
 * DESCRIPTION
 *	A UNIX stream socket, mode 0600. Master accepts a connection,
 *	writes the status text and closes it; it reads nothing from the
 *	client. The text is one "master" line and one "service" line per
 *	service, each a keyword followed by key=value pairs separated by
 *	single spaces; values never contain white space (a byte of the
 *	configuration path that is white space or '%' is written as %XX).
 *	See master(8). `postern status` prints it.
 *
 *	The write is blocking with a two-second send timeout, so a client
 *	that does not read cannot hold master up for long; the text is small
 *	enough for the socket buffer in practice.
 *
 * SECURITY
 *	Runs as root; only root (the socket's owner) can connect. Nothing
 *	is read from the peer.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"

#include "master.h"

#define MASTER_STATUS_SEND_TIMEOUT 2

static char *master_status_path;

/* master_status_escape - a value without white space */
static void
master_status_escape(struct str *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == '%' || c == 0x7f)
			str_printf(out, "%%%02X", c);
		else
			str_append_c(out, (char)c);
	}
}

/* master_status_text - what a status client gets */
static void
master_status_text(struct str *out)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	str_printf(out, "master pid=%ld uptime=%ld config=", (long)getpid(),
	    (long)(now.tv_sec - master.started.tv_sec));
	master_status_escape(out, master.config_dir);
	str_printf(out, " services=%zu\n", master_services_count());
	master_services_status(out);
}

/* master_status_accept - a client connected */
static void
master_status_accept(void *ctx UNUSED, int lfd, unsigned events UNUSED)
{
	struct timeval tv = { MASTER_STATUS_SEND_TIMEOUT, 0 };
	struct str *text;
	const char *p;
	size_t left;
	ssize_t n;
	int fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn(NULL, "status socket: accept: %m");
		return;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	text = str_new(1024, 0);
	master_status_text(text);
	p = str_c(text);
	left = str_len(text);
	while (left > 0) {
		n = send(fd, p, left, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_debug(NULL, "status socket: write: %m");
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	str_free(&text);
	(void)close(fd);
}

/* master_status_open - create and watch the status socket */
int
master_status_open(const char *path, const char **error_r)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd, ret, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (pst_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		*error_r = "path too long for a socket";
		errno = ENAMETOOLONG;
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = "exists and is not a socket";
			errno = EEXIST;
			return -1;
		}
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = "socket";
		return -1;
	}
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	saved = errno;
	(void)umask(old);
	errno = saved;
	if (ret < 0 || listen(fd, 16) < 0) {
		*error_r = ret < 0 ? "bind" : "listen";
		goto fail;
	}
	if (event_fd_add(master.loop, fd, EVENT_READ, master_status_accept,
	    NULL) < 0) {
		*error_r = "event_fd_add";
		goto fail;
	}
	master.status_fd = fd;
	master_status_path = xstrdup(path);
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

/* master_status_close - stop answering and remove the socket */
void
master_status_close(void)
{
	if (master.status_fd < 0)
		return;
	(void)event_fd_remove(master.loop, master.status_fd);
	(void)close(master.status_fd);
	master.status_fd = -1;
	if (master_status_path != NULL) {
		(void)unlink(master_status_path);
		XFREE(master_status_path);
	}
}
