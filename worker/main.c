/* salvo-worker entry point (placeholder until the worker lands; replaced in this session). */
#include <stdio.h>

int main(void)
{
    fputs("salvo-worker: not built yet\n", stderr);
    return 1;
}
