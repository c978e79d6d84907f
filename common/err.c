/* err: text for salvo's error codes. A table, not a switch, so adding a code is one line. */
#include "err.h"

#include <stddef.h>

static const struct {
    int code;
    const char *text;
} err_table[] = {
    {ERR_OK, "ok"},
    {ERR_NOMEM, "out of memory"},
    {ERR_INVAL, "invalid argument"},
    {ERR_IO, "I/O error"},
    {ERR_RANGE, "value out of range"},
    {ERR_NOTFOUND, "not found"},
    {ERR_INTR, "interrupted"},
    {ERR_TIMEOUT, "timed out"},
    {ERR_EXISTS, "already exists"},
    {ERR_PARSE, "parse error"},
    {ERR_CRON, "invalid cron expression"},
    {ERR_TZ, "unknown time zone"},
    {ERR_SCHEDULE, "invalid schedule"},
    {ERR_TEMPLATE, "invalid template"},
    {ERR_WIRE_SIZE, "message too large"},
    {ERR_WIRE_FORMAT, "malformed message"},
    {ERR_WIRE_SCHEMA, "invalid job"},
    {ERR_WIRE_VERSION, "unsupported wire version"},
    {ERR_SIGNATURE, "bad signature"},
    {ERR_MQ_CONNECT, "broker connection failed"},
    {ERR_MQ_LOGIN, "broker login failed"},
    {ERR_MQ_CHANNEL, "broker closed the channel"},
    {ERR_MQ_CLOSED, "broker connection closed"},
    {ERR_MQ_NACK, "broker nacked the publish"},
    {ERR_MQ_RETURNED, "publish was unroutable"},
    {ERR_MQ_BLOCKED, "broker blocked the connection"},
    {ERR_MQ_PROTOCOL, "unexpected broker frame"},
    {ERR_HTTP, "HTTP call failed"},
    {ERR_EXEC, "command failed"},
};

const char *err_str(int code)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++) {
        if (err_table[i].code == code)
            return err_table[i].text;
    }
    return "unknown error";
}
