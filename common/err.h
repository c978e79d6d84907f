/* err: salvo's one error enum. 0 is success; negative codes are grouped by area so a code
 * read in a log tells where it came from. err_str() turns any code into static text. */
#ifndef SALVO_ERR_H
#define SALVO_ERR_H

typedef enum salvo_err {
    ERR_OK = 0,
    /* -1 .. -19: generic */
    ERR_NOMEM = -1, /* allocation failed */
    ERR_INVAL = -2, /* invalid argument or value */
    ERR_IO = -3,    /* file or socket I/O failed (errno has the detail) */
    ERR_RANGE = -4, /* value outside its allowed range */
    ERR_NOTFOUND = -5,
    ERR_INTR = -6, /* interrupted by a signal; the caller re-checks its flags */
    ERR_TIMEOUT = -7,
    ERR_EXISTS = -8,
    /* -20 .. -39: parsing (cron, schedule file, time, templates) */
    ERR_PARSE = -20,
    ERR_CRON = -21,
    ERR_TZ = -22, /* unknown or unreadable time zone */
    ERR_SCHEDULE = -23,
    ERR_TEMPLATE = -24,
    /* -40 .. -59: wire format */
    ERR_WIRE_SIZE = -40,   /* body larger than the cap */
    ERR_WIRE_FORMAT = -41, /* not well-formed bounded msgpack */
    ERR_WIRE_SCHEMA = -42, /* well-formed, but not a valid job */
    ERR_WIRE_VERSION = -43,
    ERR_SIGNATURE = -44,
    /* -60 .. -79: broker */
    ERR_MQ_CONNECT = -60,
    ERR_MQ_LOGIN = -61,
    ERR_MQ_CHANNEL = -62, /* channel closed by the broker */
    ERR_MQ_CLOSED = -63,  /* connection lost or closed */
    ERR_MQ_NACK = -64,
    ERR_MQ_RETURNED = -65, /* unroutable publish came back */
    ERR_MQ_BLOCKED = -66,
    ERR_MQ_PROTOCOL = -67,
    /* -80 .. -99: execution */
    ERR_HTTP = -80,
    ERR_EXEC = -81,
} salvo_err;

/* Static, never-NULL text for any code (unknown codes give "unknown error"). Thread-safe. */
const char *err_str(int code);

#endif
