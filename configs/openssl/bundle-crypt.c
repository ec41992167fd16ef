/*
 * bundle-crypt: the cipher and KDF of the relay-state bundle, the image's only use of OpenSSL
 * besides tor. It writes and reads what `openssl enc -aes-256-ctr -pbkdf2 -md sha256 -iter N
 * -pass fd:3` does: "Salted__" | salt (8) | AES-256-CTR(data), with
 * key || iv = PBKDF2-HMAC-SHA256(passphrase, salt, N, 48). bundle.sh does the rest (the header,
 * the HMAC) in shell.
 *
 *   bundle-crypt derive ITER SALTHEX   prints "key=HEX" and "iv=HEX" for that salt
 *   bundle-crypt seal ITER IN OUT      OUT = "Salted__" | a fresh salt | the encrypted IN
 *   bundle-crypt open ITER IN OUT      OUT = IN decrypted (IN as seal writes it)
 *
 * The passphrase is the first line on file descriptor 3 (at most 1023 bytes, as openssl's
 * -pass fd: reads it), never an argument. OUT is created 0600; on failure it is removed.
 * Exit 0 on success, 1 with a message on standard error otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SALT_LEN 8
#define KEY_LEN 32
#define IV_LEN 16
#define PASS_MAX 1023
#define ITER_MAX 100000000UL

static const char MAGIC[8] = {'S', 'a', 'l', 't', 'e', 'd', '_', '_'};

static unsigned char passphrase[PASS_MAX + 1];
static size_t passphrase_len;
static unsigned char keyiv[KEY_LEN + IV_LEN];
static const char *out_path;

static void forget(void) {
  OPENSSL_cleanse(passphrase, sizeof passphrase);
  OPENSSL_cleanse(keyiv, sizeof keyiv);
}

static void fail(const char *what, const char *detail) {
  forget();
  if (out_path) unlink(out_path);
  fprintf(stderr, "bundle-crypt: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static unsigned long iterations(const char *text) {
  char *end;
  errno = 0;
  unsigned long n = strtoul(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || n == 0 || n > ITER_MAX) fail("not an iteration count", text);
  return n;
}

/* The first line on fd 3, without its newline. */
static void read_passphrase(void) {
  size_t got = 0;
  for (;;) {
    ssize_t n = read(3, passphrase + got, sizeof passphrase - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read the passphrase on fd 3", strerror(errno));
    if (n == 0) break;
    got += (size_t)n;
    if (memchr(passphrase, '\n', got) || got == sizeof passphrase) break;
  }
  unsigned char *newline = memchr(passphrase, '\n', got);
  if (newline) got = (size_t)(newline - passphrase);
  else if (got > PASS_MAX) fail("the passphrase is longer than 1023 bytes", NULL);
  if (got == 0) fail("the passphrase on fd 3 is empty", NULL);
  passphrase_len = got;
}

static void derive(const unsigned char salt[SALT_LEN], unsigned long iter) {
  if (!PKCS5_PBKDF2_HMAC((const char *)passphrase, (int)passphrase_len, salt, SALT_LEN, (int)iter, EVP_sha256(), sizeof keyiv, keyiv))
    fail("PBKDF2 failed", NULL);
  OPENSSL_cleanse(passphrase, sizeof passphrase);
}

static void print_hex(const char *name, const unsigned char *bytes, size_t len) {
  printf("%s=", name);
  for (size_t i = 0; i < len; i++) printf("%02X", bytes[i]);
  printf("\n");
}

static void write_all(int fd, const unsigned char *bytes, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, bytes, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write", strerror(errno));
    bytes += n;
    len -= (size_t)n;
  }
}

/* As many bytes as asked for, fewer only at the end of the file. */
static size_t read_full(int fd, unsigned char *bytes, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, bytes + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read", strerror(errno));
    if (n == 0) break;
    got += (size_t)n;
  }
  return got;
}

/* AES-256-CTR over the rest of `in`, into `out` (CTR: encrypting and decrypting are one). */
static void ctr(int in, int out) {
  EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
  if (!cipher || !EVP_EncryptInit_ex(cipher, EVP_aes_256_ctr(), NULL, keyiv, keyiv + KEY_LEN)) fail("AES-256-CTR is not available", NULL);
  OPENSSL_cleanse(keyiv, sizeof keyiv);
  unsigned char plain[16384], coded[16384];
  size_t n;
  while ((n = read_full(in, plain, sizeof plain)) > 0) {
    int len;
    if (!EVP_EncryptUpdate(cipher, coded, &len, plain, (int)n)) fail("AES-256-CTR failed", NULL);
    write_all(out, coded, (size_t)len);
  }
  OPENSSL_cleanse(plain, sizeof plain);
  EVP_CIPHER_CTX_free(cipher);
}

static int open_in(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, strerror(errno));
  return fd;
}

static int open_out(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail(path, strerror(errno));
  out_path = path;
  return fd;
}

static void close_out(int fd) {
  if (close(fd) < 0) fail(out_path, strerror(errno));
  out_path = NULL;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  const char *command = argc > 1 ? argv[1] : "";
  unsigned char salt[SALT_LEN];
  if (strcmp(command, "derive") == 0 && argc == 4) {
    unsigned long iter = iterations(argv[2]);
    const char *hex = argv[3];
    if (strlen(hex) != 2 * SALT_LEN) fail("the salt is not 8 bytes of hex", hex);
    for (int i = 0; i < SALT_LEN; i++) {
      int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
      if (high < 0 || low < 0) fail("the salt is not 8 bytes of hex", hex);
      salt[i] = (unsigned char)(high << 4 | low);
    }
    read_passphrase();
    derive(salt, iter);
    print_hex("key", keyiv, KEY_LEN);
    print_hex("iv", keyiv + KEY_LEN, IV_LEN);
    forget();
    if (fflush(stdout) != 0) fail("cannot write the keys", strerror(errno));
    return 0;
  }
  if (strcmp(command, "seal") == 0 && argc == 5) {
    unsigned long iter = iterations(argv[2]);
    read_passphrase();
    if (RAND_bytes(salt, SALT_LEN) != 1) fail("no random salt", NULL);
    derive(salt, iter);
    int in = open_in(argv[3]), out = open_out(argv[4]);
    write_all(out, (const unsigned char *)MAGIC, sizeof MAGIC);
    write_all(out, salt, SALT_LEN);
    ctr(in, out);
    close(in);
    close_out(out);
    forget();
    return 0;
  }
  if (strcmp(command, "open") == 0 && argc == 5) {
    unsigned long iter = iterations(argv[2]);
    read_passphrase();
    int in = open_in(argv[3]);
    unsigned char header[sizeof MAGIC + SALT_LEN];
    if (read_full(in, header, sizeof header) != sizeof header || memcmp(header, MAGIC, sizeof MAGIC) != 0)
      fail(argv[3], "no Salted__ header and 8-byte salt");
    derive(header + sizeof MAGIC, iter);
    int out = open_out(argv[4]);
    ctr(in, out);
    close(in);
    close_out(out);
    forget();
    return 0;
  }
  fail("usage: bundle-crypt derive ITER SALTHEX | seal ITER IN OUT | open ITER IN OUT (passphrase on fd 3)", NULL);
  return 1;
}
