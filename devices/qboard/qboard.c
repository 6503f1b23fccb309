/*
 * qboard: a small microcontroller firmware for QEMU's lm3s6965evb (Cortex-M3), the
 * emulated board certbench drives in CI. UART0 is its console: a boot banner, a login
 * with factory credentials, a forced password change with a password policy, and a tiny
 * shell. The password lives in RAM only (like many small devices that keep it unhashed);
 * QEMU's gdbstub is its debug port, and it is not locked.
 *
 * It runs from the application slot (linked at 0x8100, after its image header), started by
 * the boot stage in boot/ once the image's signature verifies. Built with Debian's
 * gcc-arm-none-eabi, no C library: see Makefile.
 */
#include <stdint.h>

#define UART0_BASE 0x4000C000u
#define UART_DR (*(volatile uint32_t *)(UART0_BASE + 0x000))
#define UART_FR (*(volatile uint32_t *)(UART0_BASE + 0x018))
#define UART_CTL (*(volatile uint32_t *)(UART0_BASE + 0x030))
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)

#ifndef FIRMWARE_VERSION
#define FIRMWARE_VERSION "1.0.0"
#endif
#define FACTORY_USER "admin"
#define FACTORY_PASSWORD "qboard-factory"

/* The release notes the image carries: data the firmware never executes, the bulk of the
 * signed payload (so a flipped byte in the middle of the image changes data, not code, and
 * a boot stage that does not verify runs the altered image and says its version). */
#define NOTE "qboard firmware " FIRMWARE_VERSION ": console login, forced password change, shell. "
#define NOTE4 NOTE NOTE NOTE NOTE
#define NOTE16 NOTE4 NOTE4 NOTE4 NOTE4
__attribute__((section(".notes"), used)) static const char notes[] = NOTE16 NOTE16 NOTE16 NOTE16 NOTE16 NOTE16;

/* RAM-resident credentials: what a debugger can read off an unlocked part. */
static char password[64];
static int password_changed;

static void putc_(char c) {
    while (UART_FR & FR_TXFF) {
    }
    UART_DR = (uint32_t)c;
}

static void puts_(const char *s) {
    while (*s) {
        putc_(*s++);
    }
}

static char getc_(void) {
    while (UART_FR & FR_RXFE) {
    }
    return (char)(UART_DR & 0xff);
}

/* Reads a line (CR or LF ends it); echo is off for secrets. */
static int readline(char *buf, int cap, int echo) {
    int n = 0;
    for (;;) {
        char c = getc_();
        if (c == '\r' || c == '\n') {
            if (n == 0 && c == '\n') {
                continue; /* the LF of a CRLF */
            }
            puts_("\r\n");
            buf[n] = 0;
            return n;
        }
        if ((c == 0x7f || c == 0x08) && n > 0) {
            n--;
            continue;
        }
        if (n < cap - 1 && c >= 0x20) {
            buf[n++] = c;
            if (echo) {
                putc_(c);
            }
        }
    }
}

static int streq(const char *a, const char *b) {
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int len(const char *s) {
    int n = 0;
    while (s[n]) {
        n++;
    }
    return n;
}

static void copy(char *dst, const char *src, int cap) {
    int i = 0;
    for (; src[i] && i < cap - 1; i++) {
        dst[i] = src[i];
    }
    dst[i] = 0;
}

static const char *const common[] = {"password", "123456", "12345678", "qwerty", "letmein", "admin", "welcome", 0};

/* The maker's policy: 10+ characters, not only digits, not the user name, not common,
 * not the factory password. */
static const char *weak(const char *p) {
    int digits = 1;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9') {
            digits = 0;
        }
    }
    if (len(p) < 10) {
        return "it is shorter than 10 characters";
    }
    if (digits) {
        return "it is only digits";
    }
    if (streq(p, FACTORY_USER)) {
        return "it is the user name";
    }
    if (streq(p, FACTORY_PASSWORD)) {
        return "it is the factory password";
    }
    for (int i = 0; common[i]; i++) {
        if (streq(p, common[i])) {
            return "it is a common password";
        }
    }
    return 0;
}

static void change_password(void) {
    char a[64], b[64];
    puts_("You are required to change your password immediately.\r\n");
    for (;;) {
        puts_("New password: ");
        readline(a, sizeof a, 0);
        const char *why = weak(a);
        if (why) {
            puts_("BAD PASSWORD: ");
            puts_(why);
            puts_("\r\n");
            continue;
        }
        puts_("Retype new password: ");
        readline(b, sizeof b, 0);
        if (!streq(a, b)) {
            puts_("Sorry, passwords do not match.\r\n");
            continue;
        }
        copy(password, a, sizeof password);
        password_changed = 1;
        puts_("password updated\r\n");
        return;
    }
}

static void shell(void) {
    char line[64];
    for (;;) {
        puts_("$ ");
        readline(line, sizeof line, 1);
        if (streq(line, "exit")) {
            return;
        } else if (streq(line, "version")) {
            puts_("firmware " FIRMWARE_VERSION "\r\n");
        } else if (line[0]) {
            puts_(line);
            puts_(": not found\r\n");
        }
    }
}

int main(void) {
    char user[32], pass[64];
    UART_CTL |= 1u; /* enable (QEMU's PL011 does not insist) */
    copy(password, FACTORY_PASSWORD, sizeof password);
    puts_("\r\nqboard firmware " FIRMWARE_VERSION " ready\r\n");
    for (;;) {
        puts_("login: ");
        readline(user, sizeof user, 1);
        puts_("Password: ");
        readline(pass, sizeof pass, 0);
        if (!streq(user, FACTORY_USER) || !streq(pass, password)) {
            puts_("Login incorrect\r\n");
            continue;
        }
        if (!password_changed) {
            change_password();
        }
        shell();
    }
}

/* Startup: zero .bss, copy .data, call main. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

void reset_handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0;
    }
    main();
    for (;;) {
    }
}

static void fault(void) {
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) static const void *const vectors[] = {
    &_estack, reset_handler, fault, fault, fault, fault, fault,
};
