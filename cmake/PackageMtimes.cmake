# CPack runs this after staging the install, before it builds the package:
# every staged file and directory gets SOURCE_DATE_EPOCH as its mtime, so the
# package does not depend on when its files were built or copied.
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  return()
endif()
execute_process(
  COMMAND find ${CPACK_TEMPORARY_DIRECTORY} -exec touch -h -d @$ENV{SOURCE_DATE_EPOCH} {} +
  RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "could not set the staged files' mtimes under ${CPACK_TEMPORARY_DIRECTORY}")
endif()
