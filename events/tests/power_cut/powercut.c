/*
 * powercut: an LD_PRELOAD library that keeps, beside a directory tree, the image of it that a
 * power cut would leave: only what fsync/fdatasync made durable.
 *
 * Model (POSIX's promise, nothing more):
 *   - a file's data and size are durable as of its last fsync/fdatasync;
 *   - a directory's entries (names, and which file each names) are durable as of the
 *     directory's last fsync; a new file, a rename, an unlink are lost without it;
 *   - everything present when the process starts is durable.
 *
 * Environment: POWERCUT_ROOT (the tree, absolute), POWERCUT_SHADOW (an empty directory where
 * the durable image is kept: `root` names the root directory's key; `d/KEY` is a directory's
 * durable listing, lines "f|d <TAB> name <TAB> key"; `f/KEY` a file's durable bytes). A key is
 * "inode.generation": an inode number freed by an unlink and reused is a new file.
 *
 * Every shadow update is a write to a temporary name and a rename, so a SIGKILL at any moment
 * leaves the previous durable image or the next, never a torn one. The test that loads this
 * library materialises the image after the kill and opens the store from it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define INODES 16384

struct range {
    off_t start, end;
};

struct inode {
    int used;
    ino_t ino;
    unsigned gen;
    int is_dir;
    char *path; /* for directories: where to list them */
    struct range *ranges;
    size_t n, cap;
    int whole; /* copy the whole file at the next sync */
};

static struct inode table[INODES];
static char root[PATH_MAX];
static size_t root_len;
static char shadow[PATH_MAX];
static dev_t root_dev;
static int enabled;
/* POWERCUT_WHOLE_FILES: copy a whole file at each sync, for writers of several processes
 * (PostgreSQL), where one process writes what another syncs. */
static int whole_files;
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static unsigned long temp_counter;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);
static int (*real_rename)(const char *, const char *);

static void load(void) {
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_pwritev = dlsym(RTLD_NEXT, "pwritev");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_rename = dlsym(RTLD_NEXT, "rename");
}

static struct inode *find(ino_t ino, int create) {
    size_t slot = (size_t)ino % INODES;
    for (size_t i = 0; i < INODES; i++) {
        struct inode *in = &table[(slot + i) % INODES];
        if (in->used && in->ino == ino) return in;
        if (!in->used) {
            if (!create) return NULL;
            memset(in, 0, sizeof *in);
            in->used = 1;
            in->ino = ino;
            return in;
        }
    }
    abort(); /* more files than the test ever makes */
}

static void key_of(const struct inode *in, char *out, size_t size) {
    snprintf(out, size, "%lu.%u", (unsigned long)in->ino, in->gen);
}

/* Writes `len` bytes to shadow/`name` through a temporary file and a rename. */
static void put_shadow(const char *name, const char *data, size_t len) {
    char path[PATH_MAX], temp[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", shadow, name);
    snprintf(temp, sizeof temp, "%s/tmp.%d.%lu", shadow, getpid(), ++temp_counter);
    int fd = real_open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) abort();
    size_t done = 0;
    while (done < len) {
        ssize_t n = real_write(fd, data + done, len - done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    close(fd);
    if (real_rename(temp, path) != 0) abort();
}

static int under_root(const char *path) {
    return enabled && strncmp(path, root, root_len) == 0 &&
           (path[root_len] == '/' || path[root_len] == '\0');
}

/* The absolute form of `path` (relative to the working directory or to `dirfd`). */
static void absolute(int dirfd, const char *path, char *out) {
    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
        return;
    }
    char base[PATH_MAX] = "";
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) base[0] = '\0';
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        base[n > 0 ? n : 0] = '\0';
    }
    snprintf(out, PATH_MAX, "%s/%s", base, path);
}

/* Saves the current listing of directory `in` as its durable listing. */
static void save_listing(struct inode *in) {
    DIR *dir = opendir(in->path);
    if (!dir) return;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char child[PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", in->path, e->d_name);
        struct stat st;
        if (lstat(child, &st) != 0) continue;
        struct inode *c = find(st.st_ino, 1);
        char key[64];
        if (S_ISDIR(st.st_mode)) {
            c->is_dir = 1;
            if (!c->path) c->path = strdup(child);
        }
        key_of(c, key, sizeof key);
        size_t need = strlen(e->d_name) + strlen(key) + 8;
        if (len + need > cap) {
            cap = 2 * (len + need);
            text = realloc(text, cap);
        }
        len += (size_t)sprintf(text + len, "%c\t%s\t%s\n", S_ISDIR(st.st_mode) ? 'd' : 'f',
                               e->d_name, key);
    }
    closedir(dir);
    char key[64], name[96];
    key_of(in, key, sizeof key);
    snprintf(name, sizeof name, "d/%s", key);
    put_shadow(name, text, len);
    free(text);
}

/* Copies the file open as `fd` (inode `in`) into its durable image: its dirty ranges, or all.
 * The image is patched in place: a kill during the patch leaves some of the new data in it,
 * which a disk may also have written back before a cut; the caller was not yet answered. */
static void save_file(int fd, struct inode *in) {
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    char key[64], path[PATH_MAX];
    key_of(in, key, sizeof key);
    snprintf(path, sizeof path, "%s/f/%s", shadow, key);
    int existed = access(path, F_OK) == 0;
    int out = real_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) abort();
    char buffer[65536];
    struct range all = {0, st.st_size};
    int whole = in->whole || !existed || whole_files;
    struct range *ranges = whole ? &all : in->ranges;
    size_t count = whole ? 1 : in->n;
    for (size_t i = 0; i < count; i++) {
        off_t at = ranges[i].start;
        while (at < ranges[i].end && at < st.st_size) {
            size_t want = (size_t)(ranges[i].end - at);
            if (want > sizeof buffer) want = sizeof buffer;
            ssize_t n = pread(fd, buffer, want, at);
            if (n <= 0) break;
            if (real_pwrite(out, buffer, (size_t)n, at) != n) abort();
            at += n;
        }
    }
    if (ftruncate(out, st.st_size) != 0) abort();
    close(out);
    in->n = 0;
    in->whole = 0;
}

static void record(int fd, off_t start, ssize_t len) {
    if (!enabled || len <= 0) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != root_dev || !S_ISREG(st.st_mode)) return;
    pthread_mutex_lock(&lock);
    struct inode *in = find(st.st_ino, 0);
    if (in) {
        if (start < 0) {
            in->whole = 1;
        } else if (in->n && in->ranges[in->n - 1].end == start) {
            in->ranges[in->n - 1].end = start + len;
        } else {
            if (in->n == in->cap) {
                in->cap = in->cap ? 2 * in->cap : 16;
                in->ranges = realloc(in->ranges, in->cap * sizeof *in->ranges);
            }
            in->ranges[in->n].start = start;
            in->ranges[in->n].end = start + len;
            in->n++;
        }
    }
    pthread_mutex_unlock(&lock);
}

static void opened(int fd, int dirfd, const char *path, int flags) {
    if (fd < 0 || !enabled) return;
    char full[PATH_MAX];
    absolute(dirfd, path, full);
    if (!under_root(full)) return;
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    pthread_mutex_lock(&lock);
    struct inode *in = find(st.st_ino, 1);
    if (S_ISDIR(st.st_mode)) {
        in->is_dir = 1;
        if (!in->path) in->path = strdup(full);
    } else if (flags & O_TRUNC) {
        in->whole = 1;
    }
    pthread_mutex_unlock(&lock);
}

static int synced(int fd, int result) {
    if (result != 0 || !enabled) return result;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_dev != root_dev) return result;
    pthread_mutex_lock(&lock);
    struct inode *in = find(st.st_ino, 0);
    if (!in) {
        /* Opened where this process did not see it (another process, before this library):
         * known by the path its descriptor names, and copied whole. */
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
        if (n > 0 && under_root(path)) {
            in = find(st.st_ino, 1);
            in->whole = 1;
            if (S_ISDIR(st.st_mode)) {
                in->is_dir = 1;
                in->path = strdup(path);
            }
        }
    }
    if (in) {
        if (S_ISDIR(st.st_mode))
            save_listing(in);
        else
            save_file(fd, in);
    }
    pthread_mutex_unlock(&lock);
    return result;
}

/* The file at `path` will no longer be reachable by that name: if it was its last name, its
 * inode number may be reused, and a reuse is another file. */
static void forgetting(const char *path) {
    if (!enabled) return;
    char full[PATH_MAX];
    absolute(AT_FDCWD, path, full);
    struct stat st;
    if (!under_root(full) || lstat(full, &st) != 0 || st.st_nlink > 1) return;
    pthread_mutex_lock(&lock);
    struct inode *in = find(st.st_ino, 0);
    if (in) {
        in->gen++;
        in->n = 0;
        in->whole = 1;
        free(in->path);
        in->path = NULL;
    }
    pthread_mutex_unlock(&lock);
}

static void walk(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    struct inode *in = find(st.st_ino, 1);
    if (S_ISDIR(st.st_mode)) {
        in->is_dir = 1;
        in->path = strdup(path);
        save_listing(in);
        DIR *dir = opendir(path);
        if (!dir) return;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char child[PATH_MAX];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            walk(child);
        }
        closedir(dir);
    } else if (S_ISREG(st.st_mode)) {
        int fd = real_open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        in->whole = 1;
        save_file(fd, in);
        close(fd);
    }
}

__attribute__((constructor)) static void start(void) {
    load();
    const char *r = getenv("POWERCUT_ROOT"), *s = getenv("POWERCUT_SHADOW");
    if (!r || !s) return;
    snprintf(root, sizeof root, "%s", r);
    root_len = strlen(root);
    snprintf(shadow, sizeof shadow, "%s", s);
    whole_files = getenv("POWERCUT_WHOLE_FILES") != NULL;
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/d", shadow);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/f", shadow);
    mkdir(sub, 0755);
    struct stat st;
    if (stat(root, &st) != 0) return;
    root_dev = st.st_dev;
    walk(root);
    char key[64];
    key_of(find(st.st_ino, 0), key, sizeof key);
    put_shadow("root", key, strlen(key));
    enabled = 1;
}

static mode_t mode_of(int flags, va_list args) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(args, int) : 0;
}

int open(const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_of(flags, args);
    va_end(args);
    if (!real_open) load();
    int fd = real_open(path, flags, mode);
    opened(fd, AT_FDCWD, path, flags);
    return fd;
}

int open64(const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_of(flags, args);
    va_end(args);
    if (!real_open) load();
    int fd = real_open(path, flags | O_LARGEFILE, mode);
    opened(fd, AT_FDCWD, path, flags);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_of(flags, args);
    va_end(args);
    if (!real_openat) load();
    int fd = real_openat(dirfd, path, flags, mode);
    opened(fd, dirfd, path, flags);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_of(flags, args);
    va_end(args);
    if (!real_openat) load();
    int fd = real_openat(dirfd, path, flags | O_LARGEFILE, mode);
    opened(fd, dirfd, path, flags);
    return fd;
}

static off_t position(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_APPEND)) {
        struct stat st;
        return fstat(fd, &st) == 0 ? st.st_size : -1;
    }
    return lseek(fd, 0, SEEK_CUR);
}

/* A write and its record happen under the lock that a sync's copy takes: a write that ended
 * before an fsync began is always in that fsync's copy (recorded after the write, unlocked, a
 * concurrent fsync could miss data the disk had made durable). */
ssize_t write(int fd, const void *buf, size_t count) {
    if (!real_write) load();
    pthread_mutex_lock(&lock);
    off_t at = enabled ? position(fd) : 0;
    ssize_t n = real_write(fd, buf, count);
    record(fd, at, n);
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    if (!real_pwrite) load();
    pthread_mutex_lock(&lock);
    ssize_t n = real_pwrite(fd, buf, count, offset);
    record(fd, offset, n);
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    return pwrite(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    if (!real_writev) load();
    pthread_mutex_lock(&lock);
    off_t at = enabled ? position(fd) : 0;
    ssize_t n = real_writev(fd, iov, count);
    record(fd, at, n);
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
    if (!real_pwritev) load();
    pthread_mutex_lock(&lock);
    ssize_t n = real_pwritev(fd, iov, count, offset);
    record(fd, offset, n);
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t offset) {
    return pwritev(fd, iov, count, offset);
}

int fsync(int fd) {
    if (!real_fsync) load();
    return synced(fd, real_fsync(fd));
}

int fdatasync(int fd) {
    if (!real_fdatasync) load();
    return synced(fd, real_fdatasync(fd));
}

int unlink(const char *path) {
    if (!real_unlink) load();
    forgetting(path);
    return real_unlink(path);
}

int rename(const char *from, const char *to) {
    if (!real_rename) load();
    forgetting(to);
    return real_rename(from, to);
}
