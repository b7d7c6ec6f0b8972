# What `cmake --install` puts where, and the Debian package CPack makes of it
# (scripts/package.sh). docs/install.md describes both for users.
#   bin/lockstep
#   share/man/man1/lockstep.1.gz                      generated from --help
#   share/bash-completion/completions/lockstep        generated from --help
#   lib/systemd/system/lockstep-mirror.service        examples/mirror/, for this prefix
#   share/doc/lockstep/{README.md,ARCHITECTURE.md,docs/,examples/}
include(GNUInstallDirs)

set(LOCKSTEP_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Directory of the mirror's systemd unit, relative to the install prefix")

# Directories are made 0755 whatever the umask, so that two installs (and two
# packages) are the same.
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

install(TARGETS lockstep RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The man page and the bash completion are written from the built binary's
# `--help` and every command's `--help` (cmake/cli-docs.sh), so they list
# exactly the commands and options that binary has. The man page's date is the
# last commit's (or SOURCE_DATE_EPOCH's), never the build's.
if(DEFINED ENV{SOURCE_DATE_EPOCH})
  set(docs_epoch $ENV{SOURCE_DATE_EPOCH})
else()
  execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 --format=%ct
                  OUTPUT_VARIABLE docs_epoch OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE git_failed)
  if(git_failed)
    set(docs_epoch "")
  endif()
endif()
set(cli_docs ${PROJECT_SOURCE_DIR}/cmake/cli-docs.sh)
set(gen ${PROJECT_BINARY_DIR}/cli-docs)
add_custom_command(
  OUTPUT ${gen}/lockstep.1 ${gen}/lockstep.1.gz ${gen}/lockstep.bash
  COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
  COMMAND bash ${cli_docs} man $<TARGET_FILE:lockstep> ${gen}/lockstep.1 "${docs_epoch}"
  COMMAND gzip -9 -n -k -f ${gen}/lockstep.1
  COMMAND bash ${cli_docs} bash $<TARGET_FILE:lockstep> ${gen}/lockstep.bash
  DEPENDS lockstep ${cli_docs}
  COMMENT "Generating the man page and bash completion from lockstep --help"
  VERBATIM)
add_custom_target(lockstep_cli_docs ALL DEPENDS ${gen}/lockstep.1.gz ${gen}/lockstep.bash)
install(FILES ${gen}/lockstep.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${gen}/lockstep.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME lockstep)

# The mirror's unit from examples/mirror/, with ExecStart pointing at this
# install's binary. It is written at install time because the prefix is only
# known then (CPack installs with its own prefix, /usr).
set(unit_src ${PROJECT_SOURCE_DIR}/examples/mirror/lockstep-mirror.service)
set(unit_exec "ExecStart=/usr/local/bin/lockstep ")
file(READ ${unit_src} unit_text)
string(FIND "${unit_text}" "${unit_exec}" unit_at)
if(unit_at EQUAL -1)
  message(FATAL_ERROR "${unit_src} has no '${unit_exec}' line to point at the installed binary")
endif()
install(CODE "
  file(READ \"${unit_src}\" unit)
  string(REPLACE \"${unit_exec}\" \"ExecStart=\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/lockstep \"
         unit \"\${unit}\")
  string(MD5 where \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  set(staged \"${PROJECT_BINARY_DIR}/install-unit/\${where}/lockstep-mirror.service\")
  file(WRITE \"\${staged}\" \"\${unit}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${LOCKSTEP_SYSTEMD_UNIT_DIR}\"
       TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES \"\${staged}\")
")

install(FILES README.md ARCHITECTURE.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# The Debian package: lockstep's shared-library dependencies come from
# dpkg-shlibdeps (dpkg-dev); the tools verify uses are recommended.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lockstep)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "CI runner for reproducible GitHub Actions workflows")
set(CPACK_PACKAGE_DESCRIPTION
    "lockstep reads GitHub Actions workflows, expands their build matrices and runs\n"
    "every job in its own container with a pinned image, records every run so that\n"
    "it can be replayed, and verifies that builds are reproducible. It includes a\n"
    "pull-through OCI registry mirror.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "lockstep maintainers <lockstep@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# verify: diffoscope explains differing files, disorderfs varies directory
# order; JavaScript actions: node and patchelf make lockstep's Node.js runtime;
# ca-certificates for pulls over HTTPS; busybox-static makes the quick-start
# image; without root, uidmap maps the user's subordinate ranges and
# slirp4netns carries the egress network (docs/rootless.md).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates, diffoscope-minimal, disorderfs, nodejs, patchelf, buildah, uidmap, slirp4netns")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion, busybox-static")
# Same files, same package: staged files get the SOURCE_DATE_EPOCH mtime.
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/PackageMtimes.cmake)
include(CPack)
