/* salvo-producer entry point (placeholder until the producer lands; replaced in this session). */
#include <stdio.h>

int main(void)
{
    fputs("salvo-producer: not built yet\n", stderr);
    return 1;
}
