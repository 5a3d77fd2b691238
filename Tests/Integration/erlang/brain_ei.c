/*
 * brain_ei: an erl_interface C node that talks to Brain the way the PHP bridge (Peb) does.
 *
 *   brain_ei TARGET_NODE COOKIE ALIVE REGNAME SCENARIO [ARGS...]
 *
 * It initialises with ei_connect_init (a hidden C node named ALIVE@<this host>), connects
 * with ei_connect to TARGET_NODE (found through epmd), sends with ei_reg_send to REGNAME and
 * reads replies with ei_receive_msg_tmo. It prints one line per step on stdout:
 *
 *   connected             after ei_connect succeeded
 *   connect_failed <erl_errno> <strerror>
 *   reply <step> <term>   a reply, printed in Erlang syntax (binaries as <<"..">> when every
 *                         byte is printable ASCII, else <<1,2,..>>)
 *   reply <step> no_reply nothing arrived within 5 s
 *   done
 *
 * Scenarios:
 *   basic ID VALUE_HEX   {s, "ID" (string), <<VALUE>>}; {g, true, "ID", Self, null};
 *                        {g, false, <<"ID">> (binary), Self, null};
 *                        {s, <<"ID:term">>, {hp,100,[sword,<<"shield">>]}}, then g of it;
 *                        {g, true, "ID:missing", Self, null}
 *   get ID               {g, true, "ID", Self, null}
 *   reconnect ID VALUE_HEX
 *                        as Peb may: connect, set and get; connect again under the same name
 *                        while the first socket is still open; get and set over the second.
 *   flood ID COUNT SECONDS
 *                        a peer that never reads: sends up to COUNT {g, true, "ID", Self, null}
 *                        (stopping early if a send blocks for 5 s), prints `flooded <n>`,
 *                        then keeps the connection open for SECONDS without reading.
 *
 * Exit status: 0 when every step ran, 2 when a connection failed, 3 on any other error.
 * Every wait is bounded (connect 5 s, send 5 s, receive 5 s).
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ei.h"

#define WAIT_MS 5000

static ei_cnode node;
static const char *target_node;
static const char *registered_name;

static void fail(const char *what) {
    printf("error %s erl_errno=%d %s\n", what, erl_errno, strerror(erl_errno));
    fflush(stdout);
    exit(3);
}

/* ---- printing a term in Erlang syntax ------------------------------------------------- */

static void print_bytes(const unsigned char *bytes, long length, int as_string) {
    int printable = 1;
    for (long i = 0; i < length; i++) {
        if (bytes[i] < 0x20 || bytes[i] > 0x7e || bytes[i] == '"' || bytes[i] == '\\') {
            printable = 0;
            break;
        }
    }
    if (printable && length > 0) {
        printf(as_string ? "\"%.*s\"" : "<<\"%.*s\">>", (int)length, (const char *)bytes);
        return;
    }
    printf(as_string ? "[" : "<<");
    for (long i = 0; i < length; i++) printf(i ? ",%u" : "%u", bytes[i]);
    printf(as_string ? "]" : ">>");
}

static int print_term(const char *buf, int *index) {
    int type, size;
    if (ei_get_type(buf, index, &type, &size) < 0) return -1;
    switch (type) {
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT: {
        char atom[MAXATOMLEN_UTF8];
        if (ei_decode_atom(buf, index, atom) < 0) return -1;
        printf("%s", atom);
        return 0;
    }
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT: {
        long long value;
        if (ei_decode_longlong(buf, index, &value) < 0) return -1;
        printf("%lld", value);
        return 0;
    }
    case ERL_BINARY_EXT: {
        unsigned char *bytes = malloc(size ? size : 1);
        long length;
        if (bytes == NULL || ei_decode_binary(buf, index, bytes, &length) < 0) return -1;
        print_bytes(bytes, length, 0);
        free(bytes);
        return 0;
    }
    case ERL_STRING_EXT: {
        char *text = malloc(size + 1);
        if (text == NULL || ei_decode_string(buf, index, text) < 0) return -1;
        print_bytes((const unsigned char *)text, size, 1);
        free(text);
        return 0;
    }
    case ERL_NIL_EXT:
    case ERL_LIST_EXT: {
        int arity;
        if (ei_decode_list_header(buf, index, &arity) < 0) return -1;
        printf("[");
        for (int i = 0; i < arity; i++) {
            if (i) printf(",");
            if (print_term(buf, index) < 0) return -1;
        }
        if (arity > 0) {
            int tail_type, tail_size;
            if (ei_get_type(buf, index, &tail_type, &tail_size) < 0) return -1;
            if (tail_type == ERL_NIL_EXT) {
                if (ei_skip_term(buf, index) < 0) return -1;
            } else {
                printf("|");
                if (print_term(buf, index) < 0) return -1;
            }
        }
        printf("]");
        return 0;
    }
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT: {
        int arity;
        if (ei_decode_tuple_header(buf, index, &arity) < 0) return -1;
        printf("{");
        for (int i = 0; i < arity; i++) {
            if (i) printf(",");
            if (print_term(buf, index) < 0) return -1;
        }
        printf("}");
        return 0;
    }
    default: {
        char *text = NULL;
        if (ei_s_print_term(&text, buf, index) < 0) return -1;
        printf("#other<%s>", text);
        free(text);
        return 0;
    }
    }
}

/* ---- connecting, sending, receiving --------------------------------------------------- */

static int connect_target(void) {
    int fd = ei_connect_tmo(&node, (char *)target_node, WAIT_MS);
    if (fd < 0) {
        printf("connect_failed %d %s\n", erl_errno, strerror(erl_errno));
        fflush(stdout);
        exit(2);
    }
    printf("connected\n");
    fflush(stdout);
    return fd;
}

static void send_buffer(int fd, ei_x_buff *x) {
    if (ei_reg_send_tmo(&node, fd, (char *)registered_name, x->buff, x->index, WAIT_MS) < 0)
        fail("ei_reg_send");
    ei_x_free(x);
}

typedef enum { ID_STRING, ID_BINARY } id_kind;

static void encode_id(ei_x_buff *x, const char *id, id_kind kind) {
    int rc = kind == ID_STRING ? ei_x_encode_string(x, id) : ei_x_encode_binary(x, id, (long)strlen(id));
    if (rc < 0) fail("encode id");
}

/* {s, Id, <<Value>>} */
static void send_set_binary(int fd, const char *id, id_kind kind, const unsigned char *value, long length) {
    ei_x_buff x;
    if (ei_x_new_with_version(&x) < 0 || ei_x_encode_tuple_header(&x, 3) < 0 || ei_x_encode_atom(&x, "s") < 0)
        fail("encode s");
    encode_id(&x, id, kind);
    if (ei_x_encode_binary(&x, value, length) < 0) fail("encode value");
    send_buffer(fd, &x);
}

/* {s, Id, {hp,100,[sword,<<"shield">>]}} */
static void send_set_term(int fd, const char *id, id_kind kind) {
    ei_x_buff x;
    if (ei_x_new_with_version(&x) < 0 || ei_x_encode_tuple_header(&x, 3) < 0 || ei_x_encode_atom(&x, "s") < 0)
        fail("encode s");
    encode_id(&x, id, kind);
    if (ei_x_encode_tuple_header(&x, 3) < 0 || ei_x_encode_atom(&x, "hp") < 0 || ei_x_encode_long(&x, 100) < 0 ||
        ei_x_encode_list_header(&x, 2) < 0 || ei_x_encode_atom(&x, "sword") < 0 ||
        ei_x_encode_binary(&x, "shield", 6) < 0 || ei_x_encode_empty_list(&x) < 0)
        fail("encode term");
    send_buffer(fd, &x);
}

/* {g, Consistency, Id, Self, null}, then the reply printed as `reply <step> <term>`. */
static void get(int fd, const char *step, const char *consistency, const char *id, id_kind kind) {
    ei_x_buff x;
    if (ei_x_new_with_version(&x) < 0 || ei_x_encode_tuple_header(&x, 5) < 0 || ei_x_encode_atom(&x, "g") < 0 ||
        ei_x_encode_atom(&x, consistency) < 0)
        fail("encode g");
    encode_id(&x, id, kind);
    if (ei_x_encode_pid(&x, ei_self(&node)) < 0 || ei_x_encode_atom(&x, "null") < 0) fail("encode g");
    send_buffer(fd, &x);

    ei_x_buff reply;
    if (ei_x_new(&reply) < 0) fail("ei_x_new");
    for (;;) {
        erlang_msg msg;
        reply.index = 0;
        int rc = ei_receive_msg_tmo(fd, &msg, &reply, WAIT_MS);
        if (rc == ERL_TICK) continue;
        if (rc == ERL_ERROR) {
            if (erl_errno == ETIMEDOUT) {
                printf("reply %s no_reply\n", step);
                break;
            }
            fail("ei_receive_msg");
        }
        if (msg.msgtype != ERL_SEND) continue;
        int index = 0, version;
        if (ei_decode_version(reply.buff, &index, &version) < 0) fail("decode version");
        printf("reply %s ", step);
        if (print_term(reply.buff, &index) < 0) fail("decode reply");
        printf("\n");
        break;
    }
    fflush(stdout);
    ei_x_free(&reply);
}

static unsigned char *from_hex(const char *hex, long *length) {
    size_t n = strlen(hex);
    if (n % 2) fail("odd hex");
    unsigned char *bytes = malloc(n / 2 + 1);
    if (bytes == NULL) fail("malloc");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) fail("bad hex");
        bytes[i] = (unsigned char)byte;
    }
    *length = (long)(n / 2);
    return bytes;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s TARGET_NODE COOKIE ALIVE REGNAME SCENARIO [ARGS...]\n", argv[0]);
        return 64;
    }
    target_node = argv[1];
    const char *cookie = argv[2], *alive = argv[3], *scenario = argv[5];
    registered_name = argv[4];

    if (ei_init() != 0) fail("ei_init");
    if (ei_connect_init(&node, alive, cookie, (unsigned int)(getpid() % 1000) + 1) < 0) fail("ei_connect_init");

    if (strcmp(scenario, "basic") == 0 && argc == 8) {
        const char *id = argv[6];
        long length;
        unsigned char *value = from_hex(argv[7], &length);
        char term_id[512], missing_id[512];
        snprintf(term_id, sizeof term_id, "%s:term", id);
        snprintf(missing_id, sizeof missing_id, "%s:missing", id);

        int fd = connect_target();
        send_set_binary(fd, id, ID_STRING, value, length);
        get(fd, "g_true_string_id", "true", id, ID_STRING);
        get(fd, "g_false_binary_id", "false", id, ID_BINARY);
        send_set_term(fd, term_id, ID_BINARY);
        get(fd, "g_term", "true", term_id, ID_STRING);
        get(fd, "g_missing", "true", missing_id, ID_STRING);
        free(value);
        ei_close_connection(fd);
    } else if (strcmp(scenario, "get") == 0 && argc == 7) {
        int fd = connect_target();
        get(fd, "g_true", "true", argv[6], ID_STRING);
        ei_close_connection(fd);
    } else if (strcmp(scenario, "reconnect") == 0 && argc == 8) {
        const char *id = argv[6];
        long length;
        unsigned char *value = from_hex(argv[7], &length);
        int first = connect_target();
        send_set_binary(first, id, ID_STRING, value, length);
        get(first, "first_link", "true", id, ID_STRING);
        int second = connect_target();
        get(second, "second_link", "true", id, ID_BINARY);
        send_set_binary(second, id, ID_BINARY, (const unsigned char *)"again", 5);
        get(second, "second_link_after_set", "false", id, ID_STRING);
        free(value);
        ei_close_connection(second);
        ei_close_connection(first);
    } else if (strcmp(scenario, "flood") == 0 && argc == 9) {
        const char *id = argv[6];
        long count = atol(argv[7]), sent = 0;
        int seconds = atoi(argv[8]);
        int fd = connect_target();
        ei_x_buff x;
        if (ei_x_new_with_version(&x) < 0 || ei_x_encode_tuple_header(&x, 5) < 0 || ei_x_encode_atom(&x, "g") < 0 ||
            ei_x_encode_atom(&x, "true") < 0 || ei_x_encode_string(&x, id) < 0 ||
            ei_x_encode_pid(&x, ei_self(&node)) < 0 || ei_x_encode_atom(&x, "null") < 0)
            fail("encode g");
        while (sent < count) {
            if (ei_reg_send_tmo(&node, fd, (char *)registered_name, x.buff, x.index, WAIT_MS) < 0) break;
            sent++;
        }
        ei_x_free(&x);
        printf("flooded %ld\n", sent);
        fflush(stdout);
        sleep((unsigned)seconds);
        ei_close_connection(fd);
    } else {
        fprintf(stderr, "unknown scenario or wrong arguments: %s\n", scenario);
        return 64;
    }
    printf("done\n");
    fflush(stdout);
    return 0;
}
