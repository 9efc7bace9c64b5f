/*
 * originalDestination(fd) -> { address, port, family } | throws
 *
 * For a TCP connection accepted on a socket that iptables REDIRECT (nat table) sent to us, the kernel's
 * connection tracking still knows where the client meant to go. getsockopt(SO_ORIGINAL_DST) on the accepted
 * socket returns that address; IPv6 uses IP6T_SO_ORIGINAL_DST on level SOL_IPV6 (same option number, 80).
 * The address family of the accepted socket decides which one to ask. Linux only: elsewhere the function
 * exists and throws ENOSYS so the JavaScript side can report "unavailable" with a reason.
 */
#include <node_api.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netfilter_ipv4.h>
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#endif

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[160];
  char code[32];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  snprintf(code, sizeof code, "E%d", err);
  napi_value js_msg, js_code, js_err, js_errno;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code);
  napi_create_error(env, js_code, js_msg, &js_err);
  napi_create_int32(env, err, &js_errno);
  napi_set_named_property(env, js_err, "errno", js_errno);
  napi_throw(env, js_err);
  return NULL;
}

static napi_value set_result(napi_env env, const char *address, unsigned port, int family) {
  napi_value obj, js_address, js_port, js_family;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &js_address);
  napi_create_uint32(env, port, &js_port);
  napi_create_uint32(env, (uint32_t)family, &js_family);
  napi_set_named_property(env, obj, "address", js_address);
  napi_set_named_property(env, obj, "port", js_port);
  napi_set_named_property(env, obj, "family", js_family);
  return obj;
}

static napi_value original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "originalDestination(fd): fd must be a non-negative integer");
    return NULL;
  }
#ifdef __linux__
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return throw_errno(env, errno, "getsockname");
  char text[INET6_ADDRSTRLEN];
  if (local.ss_family == AF_INET) {
    struct sockaddr_in dst;
    socklen_t dlen = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dlen) != 0) return throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)");
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    return set_result(env, text, ntohs(dst.sin_port), 4);
  }
  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    socklen_t dlen = sizeof dst;
    memset(&dst, 0, sizeof dst);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &dlen) != 0) {
      /* An IPv4 client accepted on a dual-stack IPv6 socket is tracked as IPv4. */
      int err = errno;
      if (IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr)) {
        struct sockaddr_in dst4;
        socklen_t d4len = sizeof dst4;
        memset(&dst4, 0, sizeof dst4);
        if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst4, &d4len) == 0) {
          inet_ntop(AF_INET, &dst4.sin_addr, text, sizeof text);
          return set_result(env, text, ntohs(dst4.sin_port), 4);
        }
        err = errno;
      }
      return throw_errno(env, err, "getsockopt(IP6T_SO_ORIGINAL_DST)");
    }
    inet_ntop(AF_INET6, &dst.sin6_addr, text, sizeof text);
    return set_result(env, text, ntohs(dst.sin6_port), 6);
  }
  return throw_errno(env, EAFNOSUPPORT, "originalDestination: not an IPv4 or IPv6 socket");
#else
  return throw_errno(env, ENOSYS, "originalDestination: SO_ORIGINAL_DST exists only on Linux");
#endif
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, original_destination, NULL, &fn) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "originalDestination", fn);
  return exports;
}
