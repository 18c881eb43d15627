/* ETAP_API marks the public functions of libetap: the library is built with hidden visibility by default,
 * so that only these are exported (and nothing internal can clash with another library in the process). */
#ifndef ETAP_EXPORT_H_
#define ETAP_EXPORT_H_

#if defined(__GNUC__) || defined(__clang__)
#define ETAP_API __attribute__((visibility("default")))
#else
#define ETAP_API
#endif

#endif /* ETAP_EXPORT_H_ */
